// The stock `des`: the DES command line with the stock plugins registered.
// A custom package does the same with its own plugins added.
import DESCLI
import DESKit
import DESPluginFilesystem
import DESPluginMariaDB
import DESPluginMSSQL
import DESPluginODBC
import DESPluginPostgreSQL
import DESPluginRedis
import DESPluginS3
import DESPluginSQLite
import DESStorage

let registry = PluginRegistry()
SQLitePlugin.register(in: registry)
PostgresPlugin.register(in: registry)
MariaDBPlugin.register(in: registry)
ODBCPlugin.register(in: registry)
MSSQLPlugin.register(in: registry)
LocalStoragePlugin.register(in: registry)
S3Plugin.register(in: registry)
RedisPlugin.register(in: registry)
FilesystemPlugin.register(in: registry)
StockNaming.register(in: registry)
await DESCommandLine.main(registry: registry)
