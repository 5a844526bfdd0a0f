"""codegen stage of lenet-edge."""
