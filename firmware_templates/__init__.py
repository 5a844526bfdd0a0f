"""firmware_templates stage of lenet-edge."""
