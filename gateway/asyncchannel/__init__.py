"""AsyncChannel v10 (асинхронный канал ШЭП): store-and-forward with push and pull delivery."""
