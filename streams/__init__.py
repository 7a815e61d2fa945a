"""streams of ungebus (see DESIGN.md)."""
