"""The route table and router: which legacy record becomes which canonical event, where it is published."""
