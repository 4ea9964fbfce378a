"""imagen-cli: the `imagen` command on top of the imagen core (job store, names, events)."""
