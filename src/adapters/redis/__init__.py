"""Redis adapters: client factory, error translation and the session store."""
