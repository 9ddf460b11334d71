"""Notices, warnings and instructions down the tree (通知/预警/指令), their sign-off (签收) and feedback (落实反馈)."""
