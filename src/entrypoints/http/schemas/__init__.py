"""Request and response models (pydantic v2), validated and published by spectree."""
