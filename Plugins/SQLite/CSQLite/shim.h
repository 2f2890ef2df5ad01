// The SQLite C API, plus wrappers for the SQLITE_TRANSIENT destructor macro,
// which Swift cannot import.
#ifndef DES_CSQLITE_SHIM_H
#define DES_CSQLITE_SHIM_H
#include <sqlite3.h>

static inline int des_sqlite3_bind_text(sqlite3_stmt *stmt, int index, const char *text, int length) {
    return sqlite3_bind_text(stmt, index, text, length, SQLITE_TRANSIENT);
}

static inline int des_sqlite3_bind_blob(sqlite3_stmt *stmt, int index, const void *bytes, int length) {
    return sqlite3_bind_blob(stmt, index, bytes, length, SQLITE_TRANSIENT);
}
#endif
