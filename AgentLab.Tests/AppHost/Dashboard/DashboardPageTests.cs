using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace AgentLab.Tests.AppHost.Dashboard;

/// <summary>The dashboard's pages in Chromium over a fake API: what they draw, what they send, and that server text stays text.</summary>
public sealed class DashboardPageTests(DashboardPageFixture fake) : IClassFixture<DashboardPageFixture>
{
    private static readonly LocatorAssertionsToBeVisibleOptions Visible = new() { Timeout = 10_000 };

    [Fact]
    public async Task Resources_FakeApi_RendersEachResourceWithStateHealthAndEndpoint()
    {
        await using var browser = await fake.OpenAsync("#/resources");
        var page = browser.Page;

        var backend = page.Locator("tr[data-resource='backend']");
        await Expect(backend).ToBeVisibleAsync(Visible);

        await Expect(backend).ToHaveAttributeAsync("data-state", "running");
        await Expect(backend).ToHaveAttributeAsync("data-health", "healthy");
        await Expect(page.Locator("tr[data-resource='labservice']")).ToHaveAttributeAsync("data-state", "exited");
        await Expect(backend.Locator("a[href='http://127.0.0.1:8000']")).ToHaveCountAsync(1);
        await Expect(backend.Locator("a[href='#/console/backend']")).ToHaveCountAsync(1);
        // A tcp:// endpoint (a database) is text, never a link.
        await Expect(page.Locator("tr[data-resource='postgres'] a[href^='tcp:']")).ToHaveCountAsync(0);
        await Expect(page.Locator("tr[data-resource='postgres']")).ToContainTextAsync("tcp://127.0.0.1:5432");
        await Expect(page.Locator("tr[data-resource='labservice'] button")).ToHaveTextAsync(["Start"]);
        Assert.Empty(browser.Errors);
    }

    [Fact]
    public async Task Resources_ClickRestart_PostsWithTheDashboardHeader()
    {
        await using var browser = await fake.OpenAsync("#/resources");
        var restart = browser.Page.Locator("tr[data-resource='backend'] button[data-action='restart']");
        await Expect(restart).ToBeVisibleAsync(Visible);

        await restart.ClickAsync();

        await Expect(browser.Page.GetByTestId("status")).ToHaveTextAsync("");
        Assert.Contains(("/api/resources/backend/restart", "1"), fake.Posts);
        Assert.Empty(browser.Errors);
    }

    [Fact]
    public async Task Logs_MarkupInMessageAndAttribute_RendersAsText()
    {
        await using var browser = await fake.OpenAsync("#/logs");
        var page = browser.Page;
        var record = page.Locator("tr[data-record-id='1']");
        await Expect(record).ToBeVisibleAsync(Visible);

        await record.ClickAsync();

        await Expect(record.Locator("[data-testid='message']")).ToHaveTextAsync("Prompt was " + DashboardPageFixture.Xss);
        var details = page.Locator("[data-testid=record-details]:visible");
        await Expect(details.Locator("tr[data-key='Evil'] td")).ToHaveTextAsync(DashboardPageFixture.Xss);
        await Expect(details.Locator($"a[href='#/traces/{DashboardPageFixture.TraceId}']")).ToHaveCountAsync(1);
        await Expect(page.Locator("main img")).ToHaveCountAsync(0);
        Assert.Equal("undefined", await page.EvaluateAsync<string>("typeof window.__xss"));
        Assert.Empty(browser.Errors);
    }

    [Fact]
    public async Task TraceView_FakeTrace_DrawsTreeInDepthOrderWithGenAiHighlightedAndNodesMarked()
    {
        await using var browser = await fake.OpenAsync($"#/traces/{DashboardPageFixture.TraceId}");
        var page = browser.Page;
        var rows = page.Locator(".span-row[data-span-id]");
        await Expect(rows).ToHaveCountAsync(4);

        var order = await rows.EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.spanId + '/' + r.dataset.depth)");
        var modelCall = page.Locator(".span-row[data-gen-ai='true']");
        await modelCall.ClickAsync();

        Assert.Equal(["a000000000000001/0", "b000000000000002/1", "c000000000000003/2", "d000000000000004/1"], order);
        await Expect(modelCall).ToHaveAttributeAsync("data-span-id", "c000000000000003");
        await Expect(modelCall).ToHaveAttributeAsync("data-parent-span-id", "b000000000000002");
        await Expect(modelCall.GetByTestId("gen-ai-summary")).ToHaveTextAsync("executor · mistral:7b · 7 in / 12 out · [stop]");
        await Expect(modelCall.Locator(".badge.node")).ToHaveCountAsync(0);
        await Expect(page.Locator(".span-row.node")).ToHaveAttributeAsync("data-span-id", "b000000000000002");
        await Expect(page.Locator(".span-row.node .badge.node")).ToHaveTextAsync("node");
        var details = page.GetByTestId("span-details");
        await Expect(details.Locator("tr.highlight")).ToHaveCountAsync(4);
        await Expect(details.Locator("tr.highlight[data-key='gen_ai.request.model'] td")).ToHaveTextAsync("mistral:7b");
        await Expect(details.Locator("tr[data-key='server.address']")).Not.ToHaveClassAsync("highlight");
        await Expect(details).ToContainTextAsync("first_token");
        // A bar is placed by offset and duration against the trace (8 ms of 40 → 20 %).
        Assert.Equal("20%", await modelCall.Locator(".bar").EvaluateAsync<string>("bar => bar.style.left"));
        Assert.Empty(browser.Errors);
    }

    [Fact]
    public async Task TraceView_MarkupInSpanAttribute_RendersAsText()
    {
        await using var browser = await fake.OpenAsync($"#/traces/{DashboardPageFixture.TraceId}");
        var span = browser.Page.Locator(".span-row[data-span-id='b000000000000002']");

        await span.ClickAsync(new() { Timeout = 10_000 });

        await Expect(browser.Page.Locator("[data-testid='span-details'] tr[data-key='note'] td")).ToHaveTextAsync(DashboardPageFixture.Xss);
        Assert.Equal("undefined", await browser.Page.EvaluateAsync<string>("typeof window.__xss"));
    }

    [Fact]
    public async Task ExecutionSearch_EnterAnId_OpensTheTracesFilteredByIt()
    {
        await using var browser = await fake.OpenAsync("#/resources");
        var page = browser.Page;

        await page.GetByTestId("execution-search").FillAsync("exec-1");
        await page.GetByTestId("execution-search").PressAsync("Enter");

        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("#/traces\\?execution_id=exec-1$"));
        await Expect(page.GetByTestId("traces-execution-id")).ToHaveValueAsync("exec-1");
        var error = page.Locator("tr[data-trace-id][data-status='error']");
        await Expect(error).ToBeVisibleAsync(Visible);
        var execution = page.Locator($"tr[data-trace-id='{DashboardPageFixture.TraceId}']");
        await Expect(execution.GetByTestId("trace-execution")).ToHaveTextAsync("…bd3c4fa1 orchestrator");
        await Expect(execution.GetByTestId("trace-execution").Locator("code")).ToHaveAttributeAsync("title", "01a201ec-48ec-76e1-b990-2b5abd3c4fa1");
        await Expect(execution.GetByTestId("trace-model-calls")).ToHaveTextAsync("3");
        await Expect(error.GetByTestId("trace-execution")).ToHaveTextAsync("");
        await execution.ClickAsync();
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex($"#/traces/{DashboardPageFixture.TraceId}$"));
        Assert.Empty(browser.Errors);
    }

    [Fact]
    public async Task Console_InitialAndStreamedLines_ShowsThemAndMarksStderr()
    {
        await using var browser = await fake.OpenAsync("#/console/backend");
        var console = browser.Page.GetByTestId("console");

        await Expect(console.Locator(".line[data-seq='3']")).ToContainTextAsync("streamed line three", new() { Timeout = 10_000 });
        await browser.Page.GetByTestId("console-search").FillAsync("listening");

        await Expect(console.Locator(".line[data-seq='2']")).ToHaveAttributeAsync("data-error", "true");
        await Expect(console.Locator(".line[data-seq='2']")).ToContainTextAsync(DashboardPageFixture.Xss);
        await Expect(console.Locator(".line:visible")).ToHaveCountAsync(1);
        Assert.Equal("undefined", await browser.Page.EvaluateAsync<string>("typeof window.__xss"));
        Assert.Empty(browser.Errors);
    }

    [Fact]
    public async Task Metrics_ChartsWithAndWithoutPoints_DrawLinesAndSayNoDataYet()
    {
        await using var browser = await fake.OpenAsync("#/metrics");
        var rate = browser.Page.Locator("figure[data-chart='request_rate']");

        await Expect(rate.Locator("path.series")).ToHaveCountAsync(2);

        await Expect(rate.Locator("ul.legend li")).ToHaveTextAsync(["backend", "labservice"]);
        await Expect(browser.Page.Locator("figure[data-chart='tokens_per_second'] [data-testid='no-data']")).ToHaveTextAsync("No data yet.");
        await Expect(browser.Page.Locator(".instruments")).ToContainTextAsync("http.server.request.duration");
        Assert.Empty(browser.Errors);
    }
}
