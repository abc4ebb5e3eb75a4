"""The user layer: memos, snapshot intake, user orders, pools and shares."""
