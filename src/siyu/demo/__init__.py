"""A synthetic brand: people across channels with ground truth, products, orders and events."""
