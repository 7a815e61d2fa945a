"""connectors of ungebus (see DESIGN.md)."""
