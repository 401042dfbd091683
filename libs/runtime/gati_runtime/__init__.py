"""What every gati-operator service shares: settings, logging, NATS, consumer loop, health.

A service is `async def main(ctx: service.ServiceContext)`, run by `gati-operator run <name>`
through `service.serve`. Inside, `ctx.consumer(...)` gives a `consumer.ConsumerLoop` whose
handler returns `outcomes.DONE`, `outcomes.Retry(...)` or `outcomes.Fail(...)`, and
`ctx.publisher.publish(...)` stores an event even across a NATS outage. `embedded_nats` runs the
real server for `gati-operator dev`, `nats` and the tests.
"""
