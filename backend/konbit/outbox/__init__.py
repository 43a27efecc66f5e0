"""The transaction outbox: intended transactions, recorded first, then signed and sent.

A request handler calls :func:`konbit.outbox.service.submit` and returns; the
:class:`konbit.outbox.worker.OutboxWorker` signs (custodial keys), sends in nonce order per
sender, waits for receipts and records the outcome. A crash at any step neither loses nor
duplicates a transaction. The outbox is the chain's write-ahead log: transactions in
blocks the chain loses are sent again (``OutboxWorker.reconcile``), and
:mod:`konbit.outbox.audit` checks it against the chain (``konbit verify``).
"""
