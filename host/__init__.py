"""host stage of lenet-edge."""
