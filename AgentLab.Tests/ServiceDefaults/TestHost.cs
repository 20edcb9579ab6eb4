using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace AgentLab.Tests.ServiceDefaults;

/// <summary>A tiny real-Kestrel app with the service defaults, on a free loopback port.</summary>
internal sealed class TestHost : IAsyncDisposable
{
    private TestHost(WebApplication app, Uri address)
    {
        App = app;
        Address = address;
    }

    public WebApplication App { get; }

    public Uri Address { get; }

    public IServiceProvider Services => App.Services;

    public static async Task<TestHost> StartAsync(Action<WebApplication> map, Action<WebApplicationBuilder>? configure = null,
        Dictionary<string, string?>? config = null, bool defaults = true)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Production });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        if (config is not null)
            builder.Configuration.AddInMemoryCollection(config);
        if (defaults)
            builder.AddServiceDefaults();
        configure?.Invoke(builder);

        var app = builder.Build();
        if (defaults)
            app.MapDefaultEndpoints();
        map(app);
        await app.StartAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new TestHost(app, new Uri(address));
    }

    public HttpClient CreateClient() => new() { BaseAddress = Address };

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        await App.DisposeAsync();
    }
}

/// <summary>One recorded log: message plus the flattened key/values of every scope it was written in.</summary>
internal sealed record LogEntry(string Category, string Message, IReadOnlyDictionary<string, object?> Scope);

/// <summary>A logger provider that records messages together with their scopes (through the external scope provider).</summary>
internal sealed class RecordingLoggerProvider : ILoggerProvider, ISupportExternalScope
{
    private IExternalScopeProvider scopes = new LoggerExternalScopeProvider();

    public ConcurrentQueue<LogEntry> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Recorder(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => scopes = scopeProvider;

    public void Dispose()
    {
    }

    private sealed class Recorder(RecordingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => owner.scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
            owner.scopes.ForEachScope(static (item, dict) =>
            {
                if (item is IEnumerable<KeyValuePair<string, object?>> pairs)
                {
                    foreach (var (key, value) in pairs)
                        dict[key] = value;
                }
            }, scope);
            owner.Entries.Enqueue(new LogEntry(category, formatter(state, exception), scope));
        }
    }
}
