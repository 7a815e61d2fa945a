"""Principals and ACLs as data: the matrix (:mod:`bus.acls.matrix`, pure), the cluster's
(:mod:`bus.acls.cluster`), and ``ungebus acl`` (:mod:`bus.acls.cli`)."""

from bus.acls.matrix import Acl, AclDiff, Operation, Pattern, ResourceType, diff, matrix

__all__ = ["Acl", "AclDiff", "Operation", "Pattern", "ResourceType", "diff", "matrix"]
