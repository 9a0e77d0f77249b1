"""Chat models behind one factory, token estimates and costs."""
