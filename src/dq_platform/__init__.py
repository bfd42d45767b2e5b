"""dq-compliance-platform: DQDL data quality and contract-risk inference on AWS SAM."""

__version__ = "0.1.0"
