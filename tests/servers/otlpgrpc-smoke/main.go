// otlpgrpc-smoke sends one OTLP ExportLogsServiceRequest over gRPC (plaintext)
// to an OpenTelemetry Collector and exits 0 when the collector accepted it.
//
// It is used by tests/servers/smoke.sh to prove that the collector's OTLP/gRPC
// receiver works; the log record body carries a marker that the smoke test
// then looks for in the collector's file-exporter output.
//
//	otlpgrpc-smoke -endpoint 127.0.0.1:4317 -marker smoke-123
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:4317", "collector OTLP/gRPC address (host:port, plaintext)")
	marker := flag.String("marker", "", "unique text put into the log record body (required)")
	timeout := flag.Duration("timeout", 10*time.Second, "overall timeout")
	flag.Parse()
	if *marker == "" {
		fmt.Fprintln(os.Stderr, "otlpgrpc-smoke: -marker is required")
		os.Exit(2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	conn, err := grpc.NewClient(*endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "otlpgrpc-smoke: dial %s: %v\n", *endpoint, err)
		os.Exit(1)
	}
	defer conn.Close()

	// An old timestamp on purpose: the shipped E-Post logs are from 2008-2017.
	ts := uint64(time.Date(2017, 11, 12, 13, 14, 15, 0, time.UTC).UnixNano())
	req := &collogspb.ExportLogsServiceRequest{
		ResourceLogs: []*logspb.ResourceLogs{{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
				str("service.name", "epost-shipper-smoke"),
			}},
			ScopeLogs: []*logspb.ScopeLogs{{
				Scope: &commonpb.InstrumentationScope{Name: "otlpgrpc-smoke"},
				LogRecords: []*logspb.LogRecord{{
					TimeUnixNano:         ts,
					ObservedTimeUnixNano: uint64(time.Now().UnixNano()),
					SeverityNumber:       logspb.SeverityNumber_SEVERITY_NUMBER_INFO,
					SeverityText:         "INFO",
					Body:                 &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "otlp grpc smoke " + *marker}},
					Attributes:           []*commonpb.KeyValue{str("smoke.transport", "grpc"), str("smoke.marker", *marker)},
				}},
			}},
		}},
	}

	resp, err := collogspb.NewLogsServiceClient(conn).Export(ctx, req, grpc.WaitForReady(true))
	if err != nil {
		fmt.Fprintf(os.Stderr, "otlpgrpc-smoke: Export to %s: %v\n", *endpoint, err)
		os.Exit(1)
	}
	if ps := resp.GetPartialSuccess(); ps != nil && ps.GetRejectedLogRecords() > 0 {
		fmt.Fprintf(os.Stderr, "otlpgrpc-smoke: collector rejected %d log records: %s\n", ps.GetRejectedLogRecords(), ps.GetErrorMessage())
		os.Exit(1)
	}
	fmt.Printf("otlpgrpc-smoke: exported 1 log record to %s (marker %s)\n", *endpoint, *marker)
}
