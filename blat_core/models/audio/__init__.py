"""The audio tower: CNN14 (PANNs layout), its log-mel front-end and the official checkpoint import."""
