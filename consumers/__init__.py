"""consumers of ungebus (see DESIGN.md): the youth unit's inbox in ``consumers.inbox``."""
