// FreeTDS db-lib (libsybdb), a client of SQL Server: logins, RPCs (sp_executesql), results.
// (unixODBC defines RETCODE too: it has a module of its own, never imported beside this one.)
#ifndef CFREETDS_SHIM_H
#define CFREETDS_SHIM_H
#include <sybfront.h>
#include <sybdb.h>

// dbopen is a macro; the function it calls, under a name Swift can see.
static inline DBPROCESS *cdes_dbopen(LOGINREC *login, const char *server) { return tdsdbopen(login, server, 1); }
static inline RETCODE cdes_set_version_74(LOGINREC *login) { return dbsetlversion(login, DBVERSION_74); }
// A TDS protocol version by its minor number (7.1 to 7.4); another number sets 7.4.
static inline RETCODE cdes_set_version_7x(LOGINREC *login, int minor) {
    switch (minor) {
    case 1: return dbsetlversion(login, DBVERSION_71);
    case 2: return dbsetlversion(login, DBVERSION_72);
    case 3: return dbsetlversion(login, DBVERSION_73);
    default: return dbsetlversion(login, DBVERSION_74);
    }
}
static const RETCODE cdes_SUCCEED = SUCCEED;
static const RETCODE cdes_FAIL = FAIL;
static const int cdes_INT_CANCEL = INT_CANCEL;
#endif
