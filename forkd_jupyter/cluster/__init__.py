"""Branches past one machine: children of a snapshot spread over the nodes
of a Ray cluster (docs/cluster.md).

The daemon joins a cluster (``hub.ClusterHub``) and puts one ``NodeAgent``
actor on every Ray node whose KVM passes the doctor's probes. A snapshot
travels to a node as its saved form (``manifest``): the small files whole,
guest RAM as content-addressed blocks compressed with zstd, streamed through
Ray's object store and kept in the node's ``chunk_cache``, so the next
snapshot of the same lineage ships only the blocks that changed. Children on
a node are ``RemoteSandbox`` proxies in the daemon's branch tree; Ray is the
only transport, scheduler and membership list."""
