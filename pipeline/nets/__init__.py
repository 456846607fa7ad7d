"""Networks: UNet and EfficientNet builders, the EfficientNet-Lite2 port, losses."""
