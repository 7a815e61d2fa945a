"""consumers of ungebus (see DESIGN.md)."""
