"""Running the whole system on one machine: HTTP server, event runner, embedded AWS."""
