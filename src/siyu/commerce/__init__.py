"""Products, orders, order items and the order status timeline."""
