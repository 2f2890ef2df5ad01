import DESKit
import Testing

@Suite("Metric help texts") struct MetricHelpTests {
    @Test("A # HELP line goes before the # TYPE line of each described metric that has none; others are left as they are")
    func addsHelp() {
        MetricHelp.describe("test_plugin_things_total", "Things a test plugin did, with a \\ and\na line feed")
        let exposition = """
            # TYPE des_packer_files_packed_total counter
            des_packer_files_packed_total 3
            # HELP des_http_requests_in_flight HTTP requests being served
            # TYPE des_http_requests_in_flight gauge
            des_http_requests_in_flight 1
            # TYPE test_plugin_things_total counter
            test_plugin_things_total{kind="a"} 1
            # TYPE undescribed_total counter
            undescribed_total 0

            """
        let out = String(decoding: MetricHelp.addingHelp(to: Array(exposition.utf8)), as: UTF8.self)
        #expect(
            out == """
                # HELP des_packer_files_packed_total Files the packer packed into uploaded containers
                # TYPE des_packer_files_packed_total counter
                des_packer_files_packed_total 3
                # HELP des_http_requests_in_flight HTTP requests being served
                # TYPE des_http_requests_in_flight gauge
                des_http_requests_in_flight 1
                # HELP test_plugin_things_total Things a test plugin did, with a \\\\ and\\na line feed
                # TYPE test_plugin_things_total counter
                test_plugin_things_total{kind="a"} 1
                # TYPE undescribed_total counter
                undescribed_total 0

                """)
        #expect(MetricHelp.addingHelp(to: []) == [])
    }
}
