"""`make reliability`: what the server keeps when it is pushed, killed, fed garbage or
read slowly, each figure measured against a real `llamaql serve` over real WebSockets
and a real SQLite file. Every figure carries checks with bounds; the suite exits
non-zero when one misses its bound."""
