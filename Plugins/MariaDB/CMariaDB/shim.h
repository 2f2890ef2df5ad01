// MariaDB Connector/C (libmariadb), the client of MySQL and MariaDB: connections, prepared statements.
#ifndef CMARIADB_SHIM_H
#define CMARIADB_SHIM_H
#include <mysql.h>
#endif
