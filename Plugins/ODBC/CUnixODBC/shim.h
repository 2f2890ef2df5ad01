// unixODBC, the ODBC driver manager: environments, connections, prepared statements, diagnostics.
// (FreeTDS's db-lib defines RETCODE too: it has a module of its own, never imported beside this one.)
#ifndef CUNIXODBC_SHIM_H
#define CUNIXODBC_SHIM_H
#include <sql.h>
#include <sqlext.h>
#include <sqlucode.h>

// Values that are macro expressions (Swift does not import those), and the attribute setters
// whose value travels in the pointer argument.
static const SQLSMALLINT cdes_SQL_C_SBIGINT = SQL_C_SBIGINT;
static const SQLSMALLINT cdes_SQL_C_DOUBLE = SQL_C_DOUBLE;
static const SQLSMALLINT cdes_SQL_C_WCHAR = SQL_C_WCHAR;
static const SQLSMALLINT cdes_SQL_C_BINARY = SQL_C_BINARY;
static const SQLSMALLINT cdes_SQL_C_CHAR = SQL_C_CHAR;
static const SQLLEN cdes_SQL_NULL_DATA = SQL_NULL_DATA;
static const SQLLEN cdes_SQL_NO_TOTAL = SQL_NO_TOTAL;

static inline SQLRETURN cdes_odbc3(SQLHENV env) {
    return SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0);
}
static inline SQLRETURN cdes_connect_attr(SQLHDBC dbc, SQLINTEGER attribute, SQLULEN value) {
    return SQLSetConnectAttr(dbc, attribute, (SQLPOINTER)value, 0);
}
static inline SQLRETURN cdes_statement_attr(SQLHSTMT stmt, SQLINTEGER attribute, SQLULEN value) {
    return SQLSetStmtAttr(stmt, attribute, (SQLPOINTER)value, 0);
}
static inline int cdes_succeeded(SQLRETURN rc) { return SQL_SUCCEEDED(rc); }
#endif
