"""The chat page: templates/ and static/, shipped inside the package as `qa.web.page`."""
