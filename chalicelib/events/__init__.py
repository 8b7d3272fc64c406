"""The asynchronous half: the transactional outbox, its relay to SNS/SQS, and the subscribers."""
