"""Networks: UNet and EfficientNet builders, the EfficientNet-Lite2 port, losses."""

POOLED_LAYER = "avg_pool"  # every classifier's pooled features, just before its dense layer
