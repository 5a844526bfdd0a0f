"""train stage of lenet-edge."""
