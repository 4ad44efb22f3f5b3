"""Reading and writing trace files (filled in by the I/O work)."""
