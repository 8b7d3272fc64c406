"""boxoffice: cinema ticket sales for flash-sale concurrency, on Chalice, PostgreSQL and Redis."""
