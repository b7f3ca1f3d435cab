-- wrk script: JSON-RPC start_payment, the seed's request shape.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"jsonrpc":"2.0","id":111,"method":"start_payment","params":{"amount":"222.333","data":{"order_id":"444"}}}'
