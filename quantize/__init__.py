"""quantize stage of lenet-edge."""
