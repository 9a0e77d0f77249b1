"""Analytics for the Costs and Reports pages: SQL aggregates shaped with pandas, and their charts."""
