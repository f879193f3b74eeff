"""What every bounded context shares: errors, clock and id ports, pagination, queries."""
