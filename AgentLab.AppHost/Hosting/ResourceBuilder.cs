namespace AgentLab.AppHost.Hosting;

/// <summary>A declared resource and the builder it belongs to; extension methods configure it fluently.</summary>
public interface IResourceBuilder<out T> where T : LabResource
{
    T Resource { get; }

    LabAppBuilder ApplicationBuilder { get; }
}

internal sealed class ResourceBuilder<T>(T resource, LabAppBuilder builder) : IResourceBuilder<T> where T : LabResource
{
    public T Resource { get; } = resource;

    public LabAppBuilder ApplicationBuilder { get; } = builder;
}

/// <summary>The fluent vocabulary of the resource model, after Aspire's (WithReference, WaitFor, ...).</summary>
public static class ResourceBuilderExtensions
{
    /// <summary>Listens on <c>http://127.0.0.1:{port}</c>; 0 picks a free port. <c>Ports:{name}</c> in configuration wins.</summary>
    public static IResourceBuilder<T> WithHttpEndpoint<T>(this IResourceBuilder<T> builder, int port = 0) where T : LabResource
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        builder.Resource.Port = port;
        builder.Resource.EndpointScheme = "http";
        return builder;
    }

    /// <summary>Ready (and healthy later on) when GET <paramref name="path"/> on its endpoint answers 2xx.</summary>
    public static IResourceBuilder<T> WithHttpHealthCheck<T>(this IResourceBuilder<T> builder, string path = "/health") where T : LabResource
    {
        builder.Resource.HealthCheckPath = path;
        return builder;
    }

    /// <summary>Ready (and healthy later on) when <paramref name="probe"/> returns true.</summary>
    public static IResourceBuilder<T> WithReadinessProbe<T>(this IResourceBuilder<T> builder,
        Func<CancellationToken, Task<bool>> probe) where T : LabResource
    {
        builder.Resource.ReadinessProbe = probe;
        return builder;
    }

    public static IResourceBuilder<T> WithEnvironment<T>(this IResourceBuilder<T> builder, string name, string value) where T : LabResource =>
        builder.WithEnvironment(name, () => value);

    /// <summary>A variable computed when the process starts (e.g. from another resource's endpoint).</summary>
    public static IResourceBuilder<T> WithEnvironment<T>(this IResourceBuilder<T> builder, string name, Func<string> value) where T : LabResource
    {
        builder.Resource.EnvironmentEntries.Add(new(name, value));
        return builder;
    }

    /// <summary>
    /// Gives this resource the other's configuration in Aspire's names: <c>ConnectionStrings__{name}</c> when it
    /// exports a connection string, <c>services__{name}__http__0</c> when it is a service. Does not wait for it.
    /// </summary>
    public static IResourceBuilder<T> WithReference<T>(this IResourceBuilder<T> builder, IResourceBuilder<LabResource> source) where T : LabResource
    {
        if (!builder.Resource.References.Contains(source.Resource))
            builder.Resource.References.Add(source.Resource);
        return builder;
    }

    /// <summary>Starts this resource only after <paramref name="dependency"/> is ready; stops it before.</summary>
    public static IResourceBuilder<T> WaitFor<T>(this IResourceBuilder<T> builder, IResourceBuilder<LabResource> dependency) where T : LabResource
    {
        if (ReferenceEquals(builder.Resource, dependency.Resource))
            throw new ArgumentException($"{builder.Resource.Name} cannot wait for itself.", nameof(dependency));
        if (!builder.Resource.WaitsFor.Contains(dependency.Resource))
            builder.Resource.WaitsFor.Add(dependency.Resource);
        return builder;
    }

    /// <summary>Also exports <c>ConnectionStrings__{name}</c>, built from its endpoint (e.g. <c>Endpoint={uri}</c>).</summary>
    public static IResourceBuilder<ProjectResource> WithConnectionString(this IResourceBuilder<ProjectResource> builder,
        Func<Uri, string> factory)
    {
        builder.Resource.ConnectionStringFactory = factory;
        return builder;
    }
}
