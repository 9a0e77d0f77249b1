"""Send providers behind one interface per channel."""
