// The stock `des` command line, with this package's source registered beside the stock plugins:
// `__NAME__ packer run -c des.yaml` is the stock packer, reading `connection.type: __TYPE__` sources too.
import DESCLI
import DESKit
import DESPluginSQLite
import DESStorage
import __NAME__Source

let registry = PluginRegistry()
SQLitePlugin.register(in: registry)  // sqlite sources and the embedded metadata store
LocalStoragePlugin.register(in: registry)  // local storage and bodies, in-memory index caches
StockNaming.register(in: registry)  // snowflake, column, key_basename
__NAME__Plugin.register(in: registry)  // connection.type: __TYPE__
await DESCommandLine.main(registry: registry)
