/*
 * acl.h - access checks the login and discovery code make against the
 * per-target ACLs (the ACL type itself is public: s3tgt/iscsi.h).
 */
#ifndef S3TGT_ISCSI_ACL_H
#define S3TGT_ISCSI_ACL_H

#include <stdbool.h>

#include "iscsi_internal.h"

/*
 * May the initiator on connection c (its name, its socket's peer address)
 * see and log in to the named target? True when the target has no ACL.
 */
bool iscsi_conn_acl_allows(struct iscsi_conn *c, const char *target, const char *initiator);

#endif
