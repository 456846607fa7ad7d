"""Unshipped experiments (two-branch network, feature heads, refined candidates): run from the CLI's
``experiment`` commands; the product path (data, nets, inference, training, views, api) never imports them."""
