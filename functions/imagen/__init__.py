"""imagen: event-driven image pipeline (Cloud Functions source)."""
