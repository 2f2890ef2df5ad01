// The stock `des`: the DES command line with the stock plugins registered.
// A custom package does the same with its own plugin added (see templates/).
import DESCLI
import DESKit
import DESPluginSQLite

let registry = PluginRegistry()
SQLitePlugin.register(in: registry)
await DESCommandLine.main(registry: registry)
