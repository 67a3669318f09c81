"""reportgen: turn a customer table into a customer-segmentation report."""

__version__ = "0.1.0"
