"""Box-office rules, no I/O: what a seat is, when a hold is live, what may happen next."""
