"""tests stage of lenet-edge."""
