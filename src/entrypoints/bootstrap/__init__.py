"""The composition root: settings, the dependency-injector container, the punq service registry."""
